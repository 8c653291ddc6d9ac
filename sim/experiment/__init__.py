"""Batch experiments: designs, replications, a durable results store, executors, analysis."""
