# Homebrew formula for docker-credential-lightsail: builds from source with cargo.
#
# This is the template: packaging/release fills in @HOMEPAGE@, @SOURCE_URL@ and @SOURCE_SHA256@
# from Cargo.toml and the source archive it makes, and writes the formula to put in a tap to
# target/release-artifacts/docker-credential-lightsail.rb. Homebrew reads the version from the
# archive's name (docker-credential-lightsail-VERSION.tar.gz).
class DockerCredentialLightsail < Formula
  desc "Docker credential helper for Amazon Lightsail container service registries"
  homepage "@HOMEPAGE@"
  url "@SOURCE_URL@"
  sha256 "@SOURCE_SHA256@"
  license "Apache-2.0"

  depends_on "rust" => :build

  def install
    system "cargo", "install", *std_cargo_args
    man1.install "packaging/docker-credential-lightsail.1"
    # Runs `docker-credential-lightsail completions bash|zsh|fish` into Homebrew's places.
    generate_completions_from_executable(bin/"docker-credential-lightsail", "completions")
  end

  def caveats
    <<~EOS
      Point Docker at the helper for your Lightsail registry (edits ~/.docker/config.json):
        docker-credential-lightsail configure --region <region>
    EOS
  end

  test do
    assert_equal "docker-credential-lightsail #{version}\n",
                 shell_output("#{bin}/docker-credential-lightsail version")
    # A registry that is not a Lightsail one: Docker's "not found" answer, exit status 1.
    assert_equal "credentials not found in native keychain\n",
                 pipe_output("#{bin}/docker-credential-lightsail get", "docker.io\n", 1)
  end
end
