"""Acting on inbound mail: store it, match it to a subscriber and issue, apply bounces,
complaints and unsubscribes, record feedback; the pipeline and the sources that feed it."""
