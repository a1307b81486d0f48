"""Rendering of scan results. Detection never formats; formatting never detects."""
