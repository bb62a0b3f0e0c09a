"""The Jupyter server's contents manager under ``alnm lab``: jupytext's, so that the ``.py``
notebooks open as notebooks, plus the ``alnm`` kernel's ``language_info`` on opening.

A jupytext text notebook stores no ``language_info`` (jupytext's metadata filter leaves it out
of the ``.py`` file). JupyterLab then adds an empty one when the notebook opens and the kernel's
when it starts, and either change marks the notebook modified before the user touched it
(issue 22). Filling in what the ``alnm`` kernel will report (the same interpreter runs this
server, :func:`alnm_core.lab.lab_command`, and the kernel, :func:`alnm_core.lab.kernel_spec_dict`)
leaves JupyterLab nothing to change. On saving, jupytext filters it out again: the ``.py``
sources never carry a Python version.
"""
from __future__ import annotations

import copy
import sys

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

from .run.pipeline import KERNEL_NAME


def kernel_language_info() -> dict:
    """What the ``alnm`` kernel (ipykernel on this interpreter) reports as ``language_info``."""
    from ipykernel.ipkernel import IPythonKernel

    info = copy.deepcopy(IPythonKernel.language_info)
    info["version"] = sys.version.split()[0]
    return info


class ContentsManager(build_async_jupytext_contents_manager_class(AsyncLargeFileManager)):
    """Jupytext's contents manager; a text notebook of the ``alnm`` kernel opens with the
    kernel's ``language_info``."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):  # noqa: A002 (the server's signature)
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if content and model.get("type") == "notebook" and not str(path).endswith(".ipynb"):
            meta = model["content"].get("metadata", {})
            if meta.get("kernelspec", {}).get("name") == KERNEL_NAME and "language_info" not in meta:
                meta["language_info"] = kernel_language_info()
        return model
