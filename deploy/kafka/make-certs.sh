#!/bin/sh
# Makes the TLS material of the compose Kafka broker in deploy/kafka/certs/ (not committed):
#   ca.crt      the private CA every client trusts (STRATEGIA_KAFKA_SSL_CA_FILE)
#   ca.key      its key: keep it offline once the broker's certificate is made
#   broker.pem  the broker's unencrypted PKCS#8 key and certificate (DNS: kafka, localhost)
# Usage: deploy/kafka/make-certs.sh [days]   (default 825; STRATEGIA_KAFKA_CERTS_DIR
# writes elsewhere). Run again to renew; the old
# files are replaced. With a CA of your own, put its certificate in ca.crt and the broker's
# key and certificate chain in broker.pem instead.
set -eu
days=${1:-825}
dir=${STRATEGIA_KAFKA_CERTS_DIR:-$(cd "$(dirname "$0")" && pwd)/certs}
mkdir -p "$dir"
cd "$dir"
umask 077
openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days "$days" \
    -subj "/CN=Strategia Kafka CA" -keyout ca.key -out ca.crt
openssl req -newkey rsa:3072 -nodes -sha256 -subj "/CN=kafka" \
    -keyout broker.key -out broker.csr
printf 'subjectAltName=DNS:kafka,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
    > broker.ext
openssl x509 -req -sha256 -days "$days" -in broker.csr -CA ca.crt -CAkey ca.key \
    -CAcreateserial -extfile broker.ext -out broker.crt
openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
cat broker.pk8 broker.crt > broker.pem
rm -f broker.csr broker.ext broker.key broker.pk8 broker.crt ca.srl
# The broker runs as uid 1000 (appuser) in apache/kafka and alone reads broker.pem; the
# services and kafka-init read only ca.crt.
chmod 644 ca.crt
chmod 600 broker.pem ca.key
if [ "$(id -u)" = 0 ]; then
    chown 1000:1000 broker.pem
else
    echo "then: sudo chown 1000:1000 $dir/broker.pem (the broker's user in apache/kafka)"
fi
echo "made $dir/ca.crt and $dir/broker.pem (valid $days days)"
