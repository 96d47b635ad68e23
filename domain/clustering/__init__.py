"""Failure clustering (docs/spec.md §7), one concept per module; the public API is
`domain.clusters`.

- `normalize`   error messages -> fingerprints (what varies between runs is stripped)
- `signatures`  a failing run -> its `Signature` (last tool errors, statuses, reason, signals)
- `similarity`  TF-IDF vectors over signatures and the merge of near-duplicate groups
- `rules`       category and root-cause area, by transparent rules tried in order
- `explanations` a cluster's explanation and fix, written from its evidence
"""
