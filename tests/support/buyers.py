"""The sample buyers, for the tests: their one definition is ``connectors.samples`` (the benchmarks use it
too, and neither may import the other)."""

from __future__ import annotations

from connectors.samples import ATHENS as ATHENS
from connectors.samples import BERLIN as BERLIN
from connectors.samples import LONDON as LONDON
from connectors.samples import MARKED_BUYERS as MARKED_BUYERS
from connectors.samples import MOSCOW as MOSCOW
from connectors.samples import PARIS as PARIS
from connectors.samples import SEATTLE as SEATTLE
from connectors.samples import SEOUL as SEOUL
from connectors.samples import SHANGHAI as SHANGHAI
from connectors.samples import TOKYO as TOKYO
from connectors.samples import sample_label as sample_label
