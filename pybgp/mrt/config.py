"""`[[mrt]]` in pybgpd's configuration:

```toml
[[mrt]]
type = "table"       # TABLE_DUMP_V2 of every path (RFC 6396 §4.3), or "updates": BGP4MP
                     #   records of each UPDATE received and each session state change
file = "/var/lib/pybgpd/rib.%Y%m%d.%H%M.mrt"   # strftime, local time of the dump/the file
interval = 300       # table: seconds between dumps (default 300); updates: a new file
                     #   every N seconds (default 0: one file for as long as pybgpd runs)
```
"""

from __future__ import annotations

import attrs

from pybgp.config_values import ConfigError, ConfigTable, choice, seconds_value, string_value


@attrs.frozen(kw_only=True)
class MrtConfig:
    type: str  # "table" or "updates"
    file: str  # a strftime pattern
    interval: float = 0.0


def parse_mrt(t: ConfigTable) -> MrtConfig:
    kind = t.get("type", choice("table", "updates"), required=True)
    config = MrtConfig(
        type=kind,
        file=t.get("file", string_value, required=True),
        interval=t.get("interval", seconds_value, default=300.0 if kind == "table" else 0.0),
    )
    if kind == "table" and config.interval <= 0:
        raise ConfigError(f"{t.key('interval')}: a table dump needs an interval above 0")
    t.done()
    return config
