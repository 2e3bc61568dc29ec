"""expq.launcher"""
