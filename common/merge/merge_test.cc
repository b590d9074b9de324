// Tests for driftless::merge (being written).
