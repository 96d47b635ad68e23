"""domain/signals"""
