"""Fleet regression of recorded drives on Ray: `tools/fleet/fleet.py` (docs/FLEET.md)."""
