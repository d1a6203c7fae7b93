"""The schedule-search problem's agents (``optgym/ScheduleSearch-v0``)."""
