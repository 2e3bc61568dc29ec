"""expq.queue"""
