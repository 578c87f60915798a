# Pipecat Cloud image for the full-mode example (examples/live_full.py), on Pipecat Cloud's
# official base image. Build it from the repository root:
#
#   docker build --platform=linux/arm64 -t <registry>/pipecat-tavus-full:0.1 .
#
# The base image serves Pipecat Cloud's session API and calls `bot(runner_args)` from /app/bot.py
# once per session; live_full.py is copied in as bot.py, next to the two example modules it
# imports. Python 3.11 is the version this package is tested with.
FROM dailyco/pipecat-base:latest-py3.11

# The package first (its dependencies change less often than the example code).
COPY pyproject.toml README.md LICENSE /tmp/pipecat-tavus-interactions/
COPY pipecat_tavus_interactions /tmp/pipecat-tavus-interactions/pipecat_tavus_interactions
RUN pip install --no-cache-dir "/tmp/pipecat-tavus-interactions[runner]" \
    && rm -rf /tmp/pipecat-tavus-interactions

# The bot: examples/live_full.py as bot.py, and the example modules it imports.
COPY examples/_live.py examples/quickstart.py ./
COPY examples/live_full.py bot.py
