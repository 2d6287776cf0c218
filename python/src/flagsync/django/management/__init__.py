"""Management commands of flagsync.django."""
