"""The presentation layer: figures (:mod:`.plots`, re-exporting the Grad-CAM gallery of
:mod:`.gallery`, the nomogram of :mod:`.nomogram` and the participant flow of :mod:`.flow`), the
legibility check every figure passes (:mod:`.legibility`), the methods paragraph and reviewer
checklist (:mod:`.methods`), the interactive viewers for JupyterLab (:mod:`.widgets`) and the HTML
report (:mod:`.html`). It reads results and artifacts; it computes no statistic of its own.
"""
