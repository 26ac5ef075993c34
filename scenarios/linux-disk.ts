import $ from "dax";
import { join } from "node:path";
import { sha256Hex } from "../harness/build.ts";
import { defineLinuxDevices } from "../harness/linux_scenario.ts";
import { runPlan } from "../harness/runner.ts";
import type { RunPlan } from "../harness/scenario.ts";

// A disk for the Linux guest: a virtio-blk device behind the AMD IOMMU,
// whose DMA reaches the guest's RAM through the guest's own nested table.
// The first boot makes an ext2 file system on a blank image, writes 4 MiB of
// random bytes and their SHA-256 as two files, and powers off (unmounting
// writes everything back). The host then reads the image itself (debugfs)
// and boots the same image a second time, whose guest checks the files:
// nothing written may be lost or changed on the way.

const DISK = "disk.img";
const DISK_MIB = 64;

/** The guest's lines: write on a blank disk, check on a written one. */
const RUN = `mkdir -p /mnt
if mount -t ext2 /dev/vda /mnt 2>/dev/null; then
  cd /mnt
  if sha256sum -c -s data.sha256; then echo "SV-LINUX disk-check=ok"; else echo "SV-LINUX disk-check=bad"; fi
  cd /
  umount /mnt
else
  mke2fs -q /dev/vda && mount -t ext2 /dev/vda /mnt || echo "SV-LINUX disk-failed"
  dd if=/dev/urandom of=/mnt/data bs=64k count=64 2>/dev/null
  (cd /mnt && sha256sum data > data.sha256)
  echo "SV-LINUX disk-written=$(cut -d' ' -f1 /mnt/data.sha256)"
  umount /mnt
fi`;

// ext4 mounts ext2; it takes its checksums from crc32c.
const MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"];

const drive = (image: string) => [
  "-drive",
  `file=${image},if=none,id=disk0,format=raw`,
  "-device",
  "virtio-blk-pci,drive=disk0,iommu_platform=on,disable-legacy=on",
];

/** A file of the ext2 image, read on the host. */
async function debugfsCat(image: string, file: string): Promise<Uint8Array> {
  const out = await $`debugfs -R ${`cat /${file}`} ${image}`.stdin("null").stderr("null")
    .bytes("stdout");
  return out;
}

/** The second boot: the same disk, read back by a fresh guest. */
const secondBoot = (image: string) =>
  defineLinuxDevices({
    name: "linux-disk/second-boot",
    description: "the disk the first boot wrote, checked by a second boot",
    modules: MODULES,
    run: RUN,
    host: () => Promise.resolve({ qemuArgs: drive(image) }),
    markers: (m) =>
      m.get("disk-check") === "ok"
        ? []
        : [`the second boot's check says ${JSON.stringify(m.get("disk-check"))}, not ok`],
  });

export default defineLinuxDevices({
  name: "linux-disk",
  description: "Linux writes files to a virtio-blk disk through the IOMMU; the host and a " +
    "second boot find them intact",
  modules: MODULES,
  run: RUN,
  needs: ["e2fsprogs"],
  host: async (dir) => {
    const image = join(dir, DISK);
    const file = await Deno.create(image);
    await file.truncate(DISK_MIB << 20);
    file.close();
    return {
      qemuArgs: drive(image),
      check: async (plan: RunPlan) => {
        const problems: string[] = [];
        const written = new TextDecoder().decode(await debugfsCat(image, "data.sha256"))
          .split(" ")[0];
        const data = await debugfsCat(image, "data");
        const digest = await sha256Hex(data);
        if (data.length !== 4 << 20 || digest !== written) {
          problems.push(
            `the image holds ${data.length} bytes of data with SHA-256 ${digest}, ` +
              `its checksum file says ${JSON.stringify(written)}`,
          );
        }
        const again = await runPlan({ ...plan, scenario: secondBoot(image) }, {
          progress: () => {},
        });
        if (again.status !== "pass") {
          problems.push(
            `the second boot: ${again.status}: ${again.reason} ${again.problems.join("; ")} ` +
              `(${again.runDir})`,
          );
        }
        return problems;
      },
    };
  },
  markers: (m) => {
    const written = m.get("disk-written");
    return written && /^[0-9a-f]{64}$/.test(written)
      ? []
      : [`the first boot wrote no data (disk-written ${JSON.stringify(written)})`];
  },
});
