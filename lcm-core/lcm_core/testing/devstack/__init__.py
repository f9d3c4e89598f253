"""The local stack behind `make run`: every LCM service plus its real dependencies on loopback."""
