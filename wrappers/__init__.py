"""Wrappers shared by every OptGym env."""

from optgym.wrappers.budget import BudgetWrapper

__all__ = ["BudgetWrapper"]
