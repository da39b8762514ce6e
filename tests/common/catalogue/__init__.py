"""The catalogue of bad inputs: every public entry point refuses each bad input clearly, before long work."""
