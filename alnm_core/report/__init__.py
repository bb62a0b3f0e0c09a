"""The presentation layer: figures (:mod:`.plots`), the methods paragraph and reviewer checklist
(:mod:`.methods`), the interactive viewers for JupyterLab (:mod:`.widgets`) and the HTML report
(:mod:`.html`). It reads results and artifacts; it computes no statistic of its own.
"""
