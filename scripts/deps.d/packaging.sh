# packaging.sh (sourced by scripts/test-deps.sh): systemd-analyze for
# TestUnitsVerify and scripts/test-deb.sh; dpkg-deb, lintian and curl for
# scripts/test-deb.sh (make test, make test-deb).
need_packages systemd-analyze=systemd dpkg-deb=dpkg lintian=lintian curl=curl
