"""expq.worker"""
