"""Reading inbound mail: parse, classify, take reports and bounce texts apart, clean replies.

Pure functions over bytes and `email.message.Message`: nothing below this line
touches the database, so each can be tested (and fuzzed) on its own.
"""
