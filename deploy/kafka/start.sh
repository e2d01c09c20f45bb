#!/bin/sh
# Starts the compose Kafka broker secured (mounted into apache/kafka as its entrypoint).
#
# Every KAFKA_CFG_* variable is a broker setting (KAFKA_CFG_LOG_DIRS -> log.dirs;
# "___" stands for "-" and "__" for "_"), written to a server.properties that lives only in
# the container's /tmp (mode 600). Secrets are added here, never in docker-compose.yml:
# the admin's JAAS entries from KAFKA_ADMIN_PASSWORD. On the first start the storage is
# formatted with the admin's SCRAM-SHA-512 credentials (--add-scram); every other user and
# all ACLs are made by the kafka-init service (python -m shared.platform.kafka_access).
set -eu
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
: "${CLUSTER_ID:?set CLUSTER_ID}"
KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
conf_dir=${STRATEGIA_KAFKA_CONF_DIR:-/tmp/strategia-kafka}
umask 077
mkdir -p "$conf_dir"
config="$conf_dir/server.properties"
: > "$config"
env | grep '^KAFKA_CFG_' | sort | while IFS='=' read -r name value; do
    key=$(printf '%s' "${name#KAFKA_CFG_}" | tr 'A-Z' 'a-z' \
        | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')
    printf '%s=%s\n' "$key" "$value" >> "$config"
done
admin="username=\"admin\" password=\"$KAFKA_ADMIN_PASSWORD\""
cat >> "$config" <<PROPERTIES
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required $admin;
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required $admin user_admin="$KAFKA_ADMIN_PASSWORD";
PROPERTIES
# For the health check (kafka-broker-api-versions.sh --command-config): the admin over TLS.
cat > "$conf_dir/admin.properties" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required $admin;
ssl.truststore.type=PEM
ssl.truststore.location=${KAFKA_CFG_SSL_TRUSTSTORE_LOCATION}
PROPERTIES
log_dir=${KAFKA_CFG_LOG_DIRS:?set KAFKA_CFG_LOG_DIRS}
if [ ! -f "$log_dir/meta.properties" ]; then
    "$KAFKA_HOME/bin/kafka-storage.sh" format --config "$config" --cluster-id "$CLUSTER_ID" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"
fi
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$config"
