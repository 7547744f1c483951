"""Phenotype gene ranker: likelihood-ratio scoring of every gene from HPO annotations (and, as an
option, gene profiles learned from stored real cases), with explanations.

The maths is in ``docs/ranker.md``. Entry points: ``genedx.rank.ranker.Ranker.load(con)`` and
``genedx.rank.ranker.RankerPredictor``; batch scoring in ``genedx.rank.batch``.
"""
