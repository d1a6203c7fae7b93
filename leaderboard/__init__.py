"""Leaderboard tasks, submissions and their validation."""
