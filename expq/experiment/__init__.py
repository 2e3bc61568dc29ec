"""expq.experiment"""
