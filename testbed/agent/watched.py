"""The store state a node process follows: prefix -> {ref -> value}, filled by one list and
kept current by the events of one watch on "/"."""

from __future__ import annotations


class WatchedState(dict):
    """`state[prefix][ref]` is the value at `prefix + ref` (ref is `namespace/name`)."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__({p: {} for p in prefixes})

    def load(self, store) -> int:
        """Re-list every prefix; returns the revision to watch from (exclusive)."""
        revision = 0
        for p in self:
            items, rev = store.list(p)
            self[p] = {kv.key[len(p):]: kv.value for kv in items}
            revision = max(revision, rev)
        return revision

    def apply(self, event) -> str | None:
        """Apply a watch event; returns the prefix it changed, None if not followed."""
        for p in self:
            if event.key.startswith(p):
                ref = event.key[len(p):]
                if event.type == "PUT":
                    self[p][ref] = event.value
                else:
                    self[p].pop(ref, None)
                return p
        return None
