"""The local broker's helpers: rules that need no broker running."""

from __future__ import annotations

import base64

from devtools.kafka import new_cluster_id


def test_cluster_ids_never_look_like_an_option_to_the_storage_tool() -> None:
    # One random id in 64 starts with "-", which kafka-storage's parser reads as a flag
    # ("argument --cluster-id/-t: expected one argument"): CI failed on exactly that.
    ids = [new_cluster_id() for _ in range(5000)]
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
    for cluster_id in ids[:50]:
        assert len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert len(set(ids)) == len(ids)
