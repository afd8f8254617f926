"""aiokafka's ``coordinator`` package: only its assignor classes (``.assignors``)."""
