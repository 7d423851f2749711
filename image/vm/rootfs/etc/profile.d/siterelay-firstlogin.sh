# shellcheck shell=sh
# siterelay VM: root's first login replaced the one-time password that the first boot made
# (login forces the change before any shell starts), so the console banner stops showing it.
if [ "$(id -u)" -eq 0 ] && [ -e /etc/issue.d/50-siterelay-root.issue ]; then
  rm -f /etc/issue.d/50-siterelay-root.issue
  echo "siterelay: root's password is yours now; the one-time password is off the console banner."
fi
