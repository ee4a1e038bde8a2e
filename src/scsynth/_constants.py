"""Registry keys and fixed names shared across scsynth."""

from __future__ import annotations

from typing import NamedTuple


class _ScsynthKeys(NamedTuple):
    X_KEY: str = "X"
    LABELS_KEY: str = "labels"


SCSYNTH_KEYS = _ScsynthKeys()

#: Total per cell after library-size normalisation (the scGAN / GRouNdGAN convention).
DEFAULT_LIBRARY_SIZE = 20_000
#: Key of ``uns`` where generated AnnData record provenance.
UNS_KEY = "scsynth"
#: Total per cell of ``layers["normalized"]`` in every generated AnnData (scanpy's ``target_sum=1e4``),
#: whatever scale a model normalises to internally.
NORMALIZED_SCALE = 10_000
#: Keys of an RNAGAN episode batch: target profiles, reference sets (padded), their mask, other-group targets,
#: and the group of each episode.
EPISODE_TARGET, EPISODE_REFS, EPISODE_MASK, EPISODE_NEGATIVE, EPISODE_GROUP = "target", "refs", "mask", "negative", "group"

#: history key of the realism checks of ``train(monitor_realism=...)`` (train and pl read it)
REALISM_KEY = "realism_validation"
