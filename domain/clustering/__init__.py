"""Failure clustering (docs/spec.md §7), one concept per module; the public API is
`domain.clusters`.

- `normalize`    error messages -> fingerprints (what varies between runs is stripped)
- `signatures`   a failing run -> its `Signature` (last tool errors, statuses, reason, signals)
- `rules`        a run's decisive root cause and where it happened, by rules in evidence order
- `explanations` a cluster's explanation and fix, written from its evidence and places
- `changes`      how clusters changed since an earlier iteration, by stable cause key
- `written`      a model's rewrite of the clusters, applied so every run stays in one cluster
"""
