"""Tests of the container image (need a Docker engine)."""
