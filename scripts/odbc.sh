#!/usr/bin/env bash
# The ODBC driver manager and Debian's ODBC drivers for the test servers (tests/sources/test_odbc.py):
# unixODBC, psqlodbc ("PostgreSQL Unicode") and MariaDB Connector/ODBC ("MariaDB Unicode"). The
# packages register their drivers in /etc/odbcinst.ini; a driver missing there (a package installed
# with its scripts skipped, an odbcinst.ini reset by hand) is registered from the package's template.
set -euo pipefail
# shellcheck source=scripts/_lib.sh
source "$(dirname "$0")/_lib.sh"

apt_install unixodbc odbc-postgresql odbc-mariadb

registered=$(odbcinst -q -d)
for pair in "PostgreSQL Unicode:/usr/share/psqlodbc/odbcinst.ini.template" \
  "MariaDB Unicode:/usr/share/odbc-mariadb/odbcinst.ini.template"; do
  name=${pair%%:*} template=${pair#*:}
  if ! grep -qxF "[$name]" <<<"$registered"; then
    say "Registering the ODBC driver '$name'"
    odbcinst -i -d -f "$template"
  fi
done
