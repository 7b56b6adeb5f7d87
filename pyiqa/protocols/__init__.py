"""Evaluation protocols: split runs, zero-shot evaluation, aggregation, results against the paper."""
