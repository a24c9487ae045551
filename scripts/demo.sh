#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds, creates the
# database under ./var with demo data, and serves on http://127.0.0.1:8080.
# Stop with Ctrl-C. Running it again keeps the existing data.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(bb_root)"

bb_need "${BB_BUILD_DEPS[@]}"
echo "==> building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBB_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
echo "==> database and demo data in ./var"
./build/bandbill init
./build/bandbill demo
echo "==> last month's bills (a second run finds them made)"
./build/bandbill bill run --period "$(date -d "$(date +%Y-%m-01) -1 day" +%Y-%m)"
echo "==> the payment sandbox (Alipay and WeChat Pay played offline) on http://127.0.0.1:8090"
./build/bandbill sandbox --init-only
./build/bandbill sandbox &
echo "==> serving on http://127.0.0.1:8080 (Ctrl-C stops)"
echo "    try: curl -H \"Authorization: Bearer \$(cat var/demo-admin.token)\" http://127.0.0.1:8080/api/v1/rules"
echo "    messages to customers (SMS, e-mail, WeChat) are delivered to the log: no gateway in a demo"
exec ./build/bandbill serve --config var/sandbox/channels.ini \
    --set notify.sms.driver=log --set notify.email.driver=log --set notify.wechat.driver=log
