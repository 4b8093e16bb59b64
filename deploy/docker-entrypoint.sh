#!/bin/sh
# The container's entry point. "run" (the default): fetch the missing models of MODEL_DIRS, then
# the bot, in the foreground so it gets SIGTERM and stops gracefully. "check", "prepare" and
# "health" go to the bot's command; anything else runs as given (image-finder index /photos).
set -eu

command=${1:-run}
[ "$#" -gt 0 ] && shift
case "$command" in
  run)
    image-finder-bot prepare "$@"
    exec image-finder-bot run "$@"
    ;;
  worker)
    image-finder-bot prepare "$@"
    exec image-finder-bot worker "$@"
    ;;
  check | prepare | health)
    exec image-finder-bot "$command" "$@"
    ;;
  *)
    exec "$command" "$@"
    ;;
esac
