"""``alnm import <recipe>``: public collections as they are downloaded -> a cohort folder.

A recipe reads a collection's download (images, spreadsheets) and writes a cohort folder that
``alnm validate`` accepts: ``cohort.csv`` (paths into the download, nothing copied that need not
be), ``cohort.json`` (where the cohort came from, how its label is defined, what it does not
record) and ``excluded.csv`` (``patient_id, reason, code``: every patient left out, and why).

Recipes: ``duke`` (Duke-Breast-Cancer-MRI, TCIA; :mod:`alnm_core.importers.duke`).

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(prog="alnm"); sub = p.add_subparsers(dest="command")
    >>> add_parser(sub)
    >>> p.parse_args(["import", "duke", "--dicom", "D", "--clinical", "C.xlsx", "--boxes", "B.xlsx",
    ...               "--out", "O"]).recipe
    'duke'
"""
from __future__ import annotations

import argparse
import importlib

#: recipe name -> module (each has ``DESCRIPTION``, ``add_arguments(parser)`` and ``main(args)``)
RECIPES = {"duke": "alnm_core.importers.duke"}


class ImporterError(ValueError):
    """A download that a recipe cannot turn into a cohort (names the file and what is wrong)."""


def recipe(name: str):
    """The module of a recipe (imported on use)."""
    if name not in RECIPES:
        raise ImporterError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    return importlib.import_module(RECIPES[name])


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``import`` with one sub-command per recipe to the ``alnm`` command's sub-parsers."""
    p = sub.add_parser("import", help="turn a public collection's download into a cohort folder",
                       description="Read a public collection as downloaded and write a cohort folder "
                                   "(cohort.csv with paths into the download, cohort.json, "
                                   "excluded.csv listing every patient left out and why).")
    recipes = p.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    for name in RECIPES:
        mod = recipe(name)
        r = recipes.add_parser(name, help=mod.DESCRIPTION.splitlines()[0], description=mod.DESCRIPTION,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(r)
        r.set_defaults(func=mod.main)
    return p
