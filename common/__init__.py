"""Shared pieces that every pipeline step must agree on.

audio     -- framing constants, loading any audio file as 44.1 kHz stereo float32, steps <-> audio
artifacts -- atomic writes, safe .npz / JSON loading, sharded dataset indexes, fingerprints
paths     -- where each artifact lives under data/ and models/
cli       -- logging, one-line user errors, the flags every script shares
"""
