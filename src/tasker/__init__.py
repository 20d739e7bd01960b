"""Tasker."""
