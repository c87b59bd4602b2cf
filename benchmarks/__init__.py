"""Benchmarks of weightbase against the tools people use today (safetensors, torch.save, ZipNN).

Run ``python -m benchmarks store``; it prints a table and records it in ``docs/benchmarks.md``.
"""
