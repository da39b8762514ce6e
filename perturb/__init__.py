"""Perturbation neuron ranking."""
