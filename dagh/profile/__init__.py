"""On-device profiling behind dagh-profile: encode, search and end-to-end latency."""
