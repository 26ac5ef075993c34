import { join } from "node:path";
import { sha256Hex } from "../harness/build.ts";
import { RUN_FILES } from "../harness/backends/backend.ts";
import { linuxMarkers } from "../harness/linux.ts";
import { defineLinuxDevices } from "../harness/linux_scenario.ts";

// A network for the Linux guest: a virtio-net device behind the AMD IOMMU on
// QEMU's user network. The harness serves 1 MiB of random bytes over HTTP on
// the host's loopback (a free port), which the user network shows the guest
// as its gateway, 10.0.2.2; the address reaches the guest as an SMBIOS OEM
// string. The guest configures its interface by hand, fetches the file and
// prints its SHA-256, which must be the file's.

const FILE_BYTES = 1 << 20;

export default defineLinuxDevices({
  name: "linux-net",
  description: "Linux fetches a file over HTTP from the host's loopback through a virtio-net " +
    "device behind the IOMMU; its digest is the file's",
  modules: ["virtio_pci", "virtio_net"],
  // busybox's nc, not its wget (whose static build faults in glibc's resolver):
  // a request by hand, the headers read off line by line up to the blank one.
  run: `server=$(tr '\\0' '\\n' < /sys/firmware/dmi/entries/11-0/raw | grep -o 'sv-http=[0-9.:]*')
server=\${server#sv-http=}
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
printf 'GET /file HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' "\$server" | nc -w 30 \${server%:*} \${server#*:} > /tmp/response
{
  read -r status
  while read -r header && [ "\${#header}" -gt 1 ]; do :; done
  cat > /tmp/file
} < /tmp/response
echo "SV-LINUX net-status=\${status%?}"
echo "SV-LINUX net-digest=$(sha256sum /tmp/file | cut -d' ' -f1)"`,
  host: async (dir) => {
    const body = new Uint8Array(FILE_BYTES);
    for (let i = 0; i < FILE_BYTES; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
    const expected = await sha256Hex(body);
    let served = 0;
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => {
        if (new URL(req.url).pathname !== "/file") return new Response("no", { status: 404 });
        served++;
        return new Response(body);
      },
    );
    const port = server.addr.port;
    return {
      qemuArgs: [
        "-smbios",
        `type=11,value=sv-http=10.0.2.2:${port}`,
        "-netdev",
        "user,id=net0",
        "-device",
        "virtio-net-pci,netdev=net0,iommu_platform=on,disable-legacy=on",
      ],
      // What the guest fetched is what the host served, once.
      check: async () => {
        const guest = linuxMarkers(await Deno.readTextFile(join(dir, RUN_FILES.guest)));
        const got = guest.get("net-digest");
        return [
          ...served === 1 ? [] : [`the server answered ${served} requests`],
          ...got === expected
            ? []
            : [`the guest's file has SHA-256 ${got}, the host served ${expected}`],
        ];
      },
      stop: () => server.shutdown(),
    };
  },
  markers: (m) => {
    const status = m.get("net-status") ?? "";
    return /^HTTP\/1\.[01] 200/.test(status) ? [] : [`the guest got ${JSON.stringify(status)}`];
  },
});
