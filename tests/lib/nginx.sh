# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# nginx.sh - an nginx that answers 200 "ok" on any path, for the benches.
#
#   cw_nginx_ok_conf DIR WORKERS ACCESS_LOG SERVER_LINES
#       prints a configuration whose files all live under DIR/nginx (made
#       here): WORKERS worker processes, ACCESS_LOG a path or "off", and
#       SERVER_LINES (listen and ssl_* directives) in its one server block.
#       Start it with: nginx -p DIR/nginx -c CONF -g 'daemon off;'

cw_nginx_ok_conf()
{
    local dir=$1 workers=$2 access=$3 lines=$4
    mkdir -p "$dir/nginx"
    cat <<CONF
user root;
worker_processes $workers;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 8192; }
http {
    access_log $access;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    server {
$lines
        location / { return 200 "ok\n"; }
    }
}
CONF
}
