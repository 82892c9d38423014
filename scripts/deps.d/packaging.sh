# packaging.sh (sourced by scripts/test-deps.sh): systemd-analyze for
# TestUnitsVerify; dpkg-deb, lintian and fakeroot for scripts/test-deb.sh
# (make deb, make test).
need_packages systemd-analyze=systemd dpkg-deb=dpkg lintian=lintian fakeroot=fakeroot
