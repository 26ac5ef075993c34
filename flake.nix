{
  description = "Scalevisor: a thin type-1 hypervisor for NUMA machines, and its scenario harness";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      devShells.${system}.default = pkgs.mkShell {
        packages = with pkgs; [
          # Kernel: stable Rust for the host target, no extra targets needed.
          rustc
          cargo
          rustfmt
          clippy
          # Harness and payloads.
          deno
          nasm
          glibc.static # C programs for the Linux guest are linked static
          # Emulators and firmware.
          qemu
          OVMF.fd
          bochs
          # GRUB ISOs (BIOS; the x86_64-efi modules come with grub2_efi).
          grub2
          grub2_efi
          xorriso
          mtools
        ];
        # Read by harness/backends/qemu.ts and harness/backends/bochs.ts.
        OVMF_CODE = "${pkgs.OVMF.fd}/FV/OVMF_CODE.fd";
        OVMF_VARS = "${pkgs.OVMF.fd}/FV/OVMF_VARS.fd";
        BXSHARE = "${pkgs.bochs}/share/bochs";
      };
    };
}
