# Borealis Agent installer for Windows (served by the engine at /api/agent/install.ps1).
# Run in an elevated PowerShell:
#   & .\install.ps1 -Server URL -Token TOKEN -Version V -ManifestSha256 HEX [-HostName NAME]
# It downloads the package from the engine, checks the manifest against the SHA-256 in
# the install command and every file against the manifest, then hands over to the
# agent's own `install` (signature check, files, Windows service, enrollment).
# $env:BOREALIS_AGENT_ROOT=<dir> installs under <dir> without elevation;
# $env:BOREALIS_AGENT_FOREGROUND=1 runs the agent in the foreground instead of a service.
param(
  [Parameter(Mandatory = $true)][string]$Server,
  [Parameter(Mandatory = $true)][string]$Token,
  [Parameter(Mandatory = $true)][string]$Version,
  [Parameter(Mandatory = $true)][string]$ManifestSha256,
  [string]$HostName = ''
)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

function Fail([string]$message) {
  Write-Error "borealis-agent install: $message"
  exit 1
}
if ($Version -notmatch '^[0-9A-Za-z.+-]+$') { Fail "bad version $Version" }
if (-not $env:BOREALIS_AGENT_ROOT) {
  $principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
  if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail 'run in an elevated PowerShell (or set BOREALIS_AGENT_ROOT for an unprivileged trial)'
  }
}
$arch = if ([Environment]::Is64BitOperatingSystem) { 'x64' } else { '' }
if ($arch -ne 'x64') { Fail 'only 64-bit Windows is supported' }
$platform = "windows-$arch"
$Server = $Server.TrimEnd('/')
$base = "$Server/api/agent/packages/$Version"
$stage = Join-Path ([IO.Path]::GetTempPath()) ("borealis-agent-install-" + [Guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $stage | Out-Null

function Get-Sha256([string]$path) {
  return (Get-FileHash -Algorithm SHA256 -Path $path).Hash.ToLowerInvariant()
}
function Expand-Gzip([string]$from, [string]$to) {
  $in = [IO.File]::OpenRead($from)
  try {
    $gz = New-Object IO.Compression.GZipStream($in, [IO.Compression.CompressionMode]::Decompress)
    $out = [IO.File]::Create($to)
    try { $gz.CopyTo($out) } finally { $out.Dispose(); $gz.Dispose() }
  } finally { $in.Dispose() }
}

try {
  $manifest = Join-Path $stage 'manifest.txt'
  Invoke-WebRequest -UseBasicParsing -Uri "$base/manifest.txt" -OutFile $manifest
  if ((Get-Sha256 $manifest) -ne $ManifestSha256.ToLowerInvariant()) {
    Fail 'the manifest does not match the install command (get a new command from the console)'
  }
  Invoke-WebRequest -UseBasicParsing -Uri "$base/manifest.sig" -OutFile (Join-Path $stage 'manifest.sig')
  $found = 0
  foreach ($line in (Get-Content -Path $manifest)) {
    $c = $line -split ' '
    if ($c.Count -ne 8 -or $c[0] -ne 'file' -or $c[1] -ne $platform) { continue }
    $name = $c[2]
    if ($name -notmatch '^[A-Za-z0-9._-]+$') { Fail 'bad file name in manifest' }
    $gzPath = Join-Path $stage "$name.gz"
    $path = Join-Path $stage $name
    Invoke-WebRequest -UseBasicParsing -Uri "$base/$platform/$name.gz" -OutFile $gzPath
    if ((Get-Sha256 $gzPath) -ne $c[6]) { Fail "$name.gz does not match the manifest" }
    Expand-Gzip $gzPath $path
    Remove-Item -Force $gzPath
    if ((Get-Sha256 $path) -ne $c[4]) { Fail "$name does not match the manifest" }
    $found++
  }
  if ($found -eq 0) { Fail "version $Version has no package for $platform" }
  $agentArgs = @('run', '--allow-all', '--no-config', '--no-lock', '--quiet', (Join-Path $stage 'agent.js'),
    'install', '--server', $Server, '--token', $Token, '--from', $stage)
  if ($HostName) { $agentArgs += @('--hostname', $HostName) }
  & (Join-Path $stage 'deno.exe') @agentArgs
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
} finally {
  Remove-Item -Recurse -Force -Path $stage -ErrorAction SilentlyContinue
}
