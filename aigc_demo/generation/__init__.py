"""Decoding shared by the app, training previews and benchmarks: per-request sampling and the
step-level batcher that lets concurrent requests on one model share forward passes."""
