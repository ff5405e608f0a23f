# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# certs.sh - test certificates made with openssl (and faketime for dates in
# the past or future), for it_tls.sh and it_http.sh. Source after common.sh.
# EC P-256 keys: fast to make. Every function writes NAME.pem and NAME.key
# into DIR.

# cert_ca DIR NAME DAYS: a self-signed CA.
cert_ca()
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1/$2.key" -out "$1/$2.pem" -days "$3" -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        2>/dev/null || cw_fail "openssl: cannot make CA $2"
}

# cert_sign DIR NAME ISSUER DAYS SAN SERIAL [FAKETIME [ca]]: NAME signed by
# ISSUER (a NAME in DIR), valid DAYS from now (or from FAKETIME, a faketime
# date spec such as '-40d'), with subjectAltName SAN ("" for none); "ca"
# makes an intermediate CA.
cert_sign()
{
    local dir=$1 name=$2 issuer=$3 days=$4 san=$5 serial=$6 when=${7:-} ca=${8:-}
    local ext=$dir/$name.ext
    local -a pre=()
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null ||
        cw_fail "openssl: cannot make the request of $name"
    if [[ $ca == ca ]]; then
        printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$ext"
    else
        printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$ext"
    fi
    [[ -n $san ]] && printf 'subjectAltName=%s\n' "$san" >>"$ext"
    [[ -n $when ]] && pre=(faketime -f "$when")
    "${pre[@]}" openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$issuer.pem" \
        -CAkey "$dir/$issuer.key" -set_serial "$serial" -days "$days" -extfile "$ext" \
        -out "$dir/$name.pem" 2>/dev/null || cw_fail "openssl: cannot sign $name"
}

# cert_selfsigned DIR NAME DAYS SAN
cert_selfsigned()
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$1/$2.key" -out "$1/$2.pem" -days "$3" -subj "/CN=$2" \
        -addext "subjectAltName=$4" 2>/dev/null || cw_fail "openssl: cannot make $2"
}

# cert_enddate FILE: notAfter of the (first) certificate of FILE in Unix seconds.
cert_enddate()
{
    date -u -d "$(openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%s
}

# cert_startdate FILE: notBefore in Unix seconds.
cert_startdate()
{
    date -u -d "$(openssl x509 -in "$1" -noout -startdate | sed 's/^notBefore=//')" +%s
}

# tls_server LOG PORT CERT KEY [CHAIN]: openssl s_server answering HTTP (-www)
# on 127.0.0.1:PORT; its PID is recorded for the cleanup.
tls_server()
{
    local -a chain=()
    [[ -n ${5:-} ]] && chain=(-cert_chain "$5")
    cw_spawn "$1" openssl s_server -accept "127.0.0.1:$2" -cert "$3" -key "$4" "${chain[@]}" \
        -www -quiet -naccept 100000
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (5 s).
wait_port()
{
    local i
    for ((i = 0; i < 100; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    cw_fail "nothing listens on 127.0.0.1:$1"
}
