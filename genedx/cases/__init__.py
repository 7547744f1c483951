"""Cases: the one case model, readers (phenopackets, JSONL), the simulator, splits and the RFT export.

Modules (data flows top to bottom):

- ``model``: ``Case`` and ``BadRecord``.
- ``readers``: ``read_cases(paths)`` / ``parse_record`` / ``parse_phenopacket`` — every input format.
- ``terms``: ``TermMapper`` (alt/obsolete HPO ids -> current term; labels).
- ``store``: ``normalize_case``, ``import_cases`` (one transaction, idempotent), ``load_cases``.
- ``simulate``: ``SimulationConfig`` + ``simulate`` (seeded simulated patients per gene).
- ``split``: ``make_split`` (by publication / case / gene; stored in ``case_split``).
- ``export``: ``case_report``, ``instructions``, ``rft_record``, ``export_split`` (RFT JSONL).
- ``stats``: ``dataset_stats``; ``quickstart``: ``quickstart(con)`` for a first run.
"""
