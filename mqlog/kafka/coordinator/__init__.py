"""kafka-python's ``kafka.coordinator`` package: only its assignor classes exist here."""
